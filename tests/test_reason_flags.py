"""reason_flag: the CF bit field beside source_flag (data_catalog/schema.py table)."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog import schema


def test_the_table_is_a_cf_bit_field():
    attrs = schema.reason_attrs()
    masks = [int(v) for v in attrs["flag_masks"]]
    assert masks == [1 << k for k in range(len(masks))]
    assert len(attrs["flag_meanings"].split()) == len(masks)
    assert set(schema.GAP_REASON) == {schema.RFI, schema.DENSE_VEGETATION, schema.FROZEN,
                                      schema.NO_OVERPASS, schema.INVALID}


def test_each_gap_category_maps_to_its_bit_and_observed_days_carry_none():
    gm = np.array([[0, 1, 2, 3], [4, 5, 6, 0]], np.int8)
    land = gm != schema.NOT_LAND
    filled = land & (gm != 0)
    out = schema.reason_flags(gm, filled, np.zeros(gm.shape, bool), later_days=False,
                              amsre_rescaled=False, land=land)
    assert out.tolist() == [[0, 1, 2, 4], [8, 16, 0, 0]]
    asc = np.ones(gm.shape, bool)
    out = schema.reason_flags(gm, filled, asc, later_days=True, amsre_rescaled=~filled,
                              land=land)
    # ASCAT and look-ahead only where filled; rescaling only where observed
    assert (out[filled] & 96 == 96).all() and (out[~filled & land] == 128).all()


@pytest.mark.parametrize("date", ["2005-01-20", "2010-07-15"])
def test_demo_predict_reason_flags_follow_the_gap_categories_and_ascat(demo_world, date):
    from model.inference import predict

    out = predict(demo_world, (-104.0, 30.0, -92.0, 42.0), date, device="cpu")
    r = out[schema.REASON_FLAG].values
    gm = out[schema.GAP_MASK].values
    land = out[schema.LAND].values
    seen = set()
    for code, bit in schema.GAP_REASON.items():
        sel = land & (gm == code)
        if sel.any():
            seen.add(code)
            assert (r[sel] & bit).all() and not (r[~sel & land] & bit).any()
    assert seen, "no gap category in the region"
    asc = np.isfinite(out[schema.ASCAT_SM].values)
    used = (r & schema.REASON_BIT["ascat_used"]) > 0
    assert not used[~asc].any()  # never without ASCAT that day
    if date < "2007":  # no ASCAT in orbit: the bit never set
        assert not used.any()
    else:
        assert used.any()
    observed = land & (gm == schema.OBSERVED)
    assert ((r[observed] & schema.REASON_BIT["amsre_rescaled"]) > 0).all()  # AMSR-E days
