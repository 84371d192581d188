"""Unit constants shared by the carbon modules (one definition each)."""

from gis.zonal import M2_PER_HA, M2_PER_MU

CO2_PER_C = 44.0 / 12.0  # t CO2 per t C (molar masses 44 and 12)

__all__ = ["CO2_PER_C", "M2_PER_HA", "M2_PER_MU"]
