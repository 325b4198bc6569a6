"""SMART authorization server fixtures (shared with the other SMART test folder)."""

from tests.smart_support import (  # noqa: F401
    admin_user,
    clinician,
    confidential_app,
    fresh_key_ring,
    other_patient,
    patient_record,
    patient_user,
    public_app,
)
