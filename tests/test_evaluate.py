"""target_specificity on hand-made evaluate results."""

from motive.evaluate import target_specificity


def test_target_specificity_is_the_target_change_minus_the_other_change():
    base = {"target_motion_loss": 0.50, "other_motion_loss": 1.00}
    tuned = {"target_motion_loss": 0.375, "other_motion_loss": 1.25}  # target −0.125, others +0.25
    assert target_specificity(tuned, base) == -0.375
    assert target_specificity(base, base) == 0.0
