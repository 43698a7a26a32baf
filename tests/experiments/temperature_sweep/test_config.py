"""The sweep's configuration."""

import dataclasses

import pytest

from dmlnotes.experiments import temperature_sweep as ts


@pytest.mark.parametrize("drops", [(0,), (3, 3), (1.5,)])
def test_drop_steps_are_distinct_steps_from_1(drops):
    with pytest.raises(ValueError, match="lr_drop_steps"):
        dataclasses.replace(ts.GLYPHS, lr_drop_steps=drops)
