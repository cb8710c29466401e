"""Agent kinds of the defection model (views onto the model's population arrays)."""

from isk_defection.agents.fighters import (
    KINDS,
    AlQaedaMilitant,
    Fighter,
    FormerOfficial,
    ISKMember,
    TalibanMember,
    TTPMilitant,
    UyghurMilitant,
)

__all__ = [
    "KINDS",
    "AlQaedaMilitant",
    "Fighter",
    "FormerOfficial",
    "ISKMember",
    "TTPMilitant",
    "TalibanMember",
    "UyghurMilitant",
]
