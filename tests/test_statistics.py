"""Bootstrap intervals, paired differences and seeds as a factor, against cases with known answers."""
import numpy as np
import pytest

from ms_osr import statistics as st


def test_mean_ci_matches_the_normal_theory_interval():
    # For n = 400 draws of N(0, 1) the 95% interval of the mean is mean +- 1.96 * s / sqrt(n).
    x = np.random.default_rng(3).normal(10.0, 2.0, 400)
    est = st.mean_ci(x)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert est.mean == pytest.approx(x.mean())
    assert est.low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert est.high == pytest.approx(x.mean() + half, abs=0.1 * half)
    assert est.n == 400


def test_mean_ci_is_reproducible_and_degenerate_cases():
    x = [1.0, 2.0, 4.0, 8.0, 3.0]
    assert st.mean_ci(x) == st.mean_ci(x)
    assert st.mean_ci([5.0]) == st.Estimate(5.0, 5.0, 5.0, 1)
    assert st.mean_ci([2.0, 2.0, 2.0]) == st.Estimate(2.0, 2.0, 2.0, 3)
    with pytest.raises(ValueError, match="finite"):
        st.mean_ci([1.0, np.inf])
    with pytest.raises(ValueError, match="no values"):
        st.mean_ci([])


def test_paired_difference_keeps_the_pairing():
    rng = np.random.default_rng(0)
    base = rng.normal(25, 4, 16)            # images differ a lot ...
    better = base + 0.3 + rng.normal(0, 0.05, 16)  # ... but the model gain is small and consistent
    pd = st.paired_difference(better, base)
    assert pd.wins == 16 and pd.losses == 0 and pd.ties == 0
    assert 0.2 < pd.diff.low < 0.3 < pd.diff.high < 0.4
    # an unpaired interval of the same gain would straddle zero: the pairing is what gives power
    unpaired_half = 1.96 * np.sqrt(better.var(ddof=1) / 16 + base.var(ddof=1) / 16)
    assert unpaired_half > 0.3
    assert "won 16, lost 0" in pd.text()
    with pytest.raises(ValueError, match="pairs must match"):
        st.paired_difference([1, 2], [1])


def test_ties_are_counted():
    pd = st.paired_difference([1.0, 2.0, 3.0], [1.0, 2.5, 2.0], tie=1e-9)
    assert (pd.wins, pd.losses, pd.ties) == (1, 1, 1)


def test_seeds_are_averaged_per_image_first():
    rows = [{"image": "a", "seed": 0, "psnr": 20.0}, {"image": "a", "seed": 1, "psnr": 22.0},
            {"image": "b", "seed": 0, "psnr": 30.0}, {"image": "b", "seed": 1, "psnr": 32.0}]
    units, means, per_seed = st.per_unit_means(rows, "psnr")
    assert units == ["a", "b"] and means.tolist() == [21.0, 31.0]
    assert per_seed == {"0": 25.0, "1": 27.0}
    summary = st.summarise(rows, "psnr", factor="seed")
    assert summary["n"] == 2 and summary["mean"] == 26.0 and summary["per_seed"] == per_seed
    with pytest.raises(ValueError, match="image 'b' has no psnr for seed 1"):
        st.per_unit_means(rows[:3], "psnr")


def test_infinite_psnr_is_capped_in_summaries():
    rows = [{"image": "a", "psnr": float("inf")}, {"image": "b", "psnr": 40.0}]
    assert st.summarise(rows, "psnr")["mean"] == 70.0
