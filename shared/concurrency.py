"""Optimistic concurrency: ETags from an aggregate's version, checked against `If-Match`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from shared.errors import PreconditionFailed, PreconditionRequired

#: The `If-Match` request header of an update (an ETag list; `*` matches any version).
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200)]


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, current_version: int) -> None:
    """412 when the client's `If-Match` names another version; no header means no precondition."""
    if if_match is None:
        return
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" in candidates or etag(current_version) in candidates:
        return
    raise PreconditionFailed(f"The resource has changed: its current ETag is {etag(current_version)}.",
                             current_etag=etag(current_version))


def require_if_match(if_match: str | None, current_version: int) -> None:
    """As `check_if_match`, but a missing `If-Match` is a 428: for changes that must not overwrite blindly."""
    if if_match is None:
        raise PreconditionRequired(f"Send If-Match with the current ETag ({etag(current_version)}) to change this.",
                                   current_etag=etag(current_version))
    check_if_match(if_match, current_version)
