"""The feature spec: window -> integer features -> standardized int8, identical on host and board.

    from mpml.features import FeatureSpec
    spec = FeatureSpec.from_dict({"blocks": [{"stats": {}}, {"bands": {"fft": 64, "bands": 8}}]})
    spec.fit(train_windows)              # int16 [n, length, channels] or a mpml.data.Windows
    x8 = spec.transform(windows)         # int8 [n, spec.n_features]; input scale/zp: spec.input_scale/_zero_point
    graph.features = spec.to_bytes()     # the blob's feature section; FeatureSpec.from_bytes() reads it

Every integer step is defined in docs/features.md; the board's module
`firmware/mpml/featurize.py` (on the host: `mpml.shared.featurize`) is that
document in plain Python, one window at a time, from the spec bytes.
"""

from mpml.features.spec import (STATS, BandsBlock, FeatureError, FeatureSpec, RawBlock, StatsBlock)

__all__ = ["FeatureSpec", "FeatureError", "RawBlock", "StatsBlock", "BandsBlock", "STATS"]
