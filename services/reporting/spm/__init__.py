"""The SPM matrix (issue 15): targets per service type, residents in need, served, programmes and budgets."""
