"""The shuffled-label control's labels carry nothing of the truth (`labels.stratified_shuffle`)."""

from __future__ import annotations

from collections import Counter

from dftrain.labels import stratified_shuffle


def test_each_true_class_is_spread_evenly_over_the_pseudo_classes():
    # 34 real videos of 8 crops and 120 fake videos of 2 crops: the mini experiment's shape, where a
    # hash per video alone gave "fake" to 66% of the fake crops and 40% of the real ones
    videos = [(f"real{i}", 0, 8) for i in range(34)] + [(f"fake{i}", 1, 2) for i in range(120)]
    for classes in (2, 3, 6):
        got = stratified_shuffle(videos, classes)
        assert set(got) == {v for v, _, _ in videos}
        for truth in (0, 1):
            crops = Counter()
            for v, y, n in videos:
                if y == truth:
                    crops[got[v]] += n
            per = sum(crops.values()) / classes
            assert set(crops) == set(range(classes))
            assert max(abs(c - per) for c in crops.values()) <= 8  # within one video's crops
    assert stratified_shuffle(videos, 2) == stratified_shuffle(list(reversed(videos)), 2)
