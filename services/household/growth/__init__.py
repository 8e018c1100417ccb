"""Child growth: WHO z-scores, Permenkes 2/2020 classes and KMS growth signals for children 0-60 months."""

from services.household.growth.classify import (
    classify_haz,
    classify_muac,
    classify_waz,
    classify_whz,
    is_bgm,
)
from services.household.growth.kms import (
    DEFAULT_KBM_TABLE_G,
    default_min_gain_g,
    kms_signal,
    min_gain_from_table,
    two_consecutive_t,
)
from services.household.growth.tables import Sex
from services.household.growth.zscores import GrowthResult, assess

__all__ = [
    "DEFAULT_KBM_TABLE_G",
    "GrowthResult",
    "Sex",
    "assess",
    "classify_haz",
    "classify_muac",
    "classify_waz",
    "classify_whz",
    "default_min_gain_g",
    "is_bgm",
    "kms_signal",
    "min_gain_from_table",
    "two_consecutive_t",
]
