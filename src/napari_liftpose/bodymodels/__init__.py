"""Body models of animals (TOML files), a pose sampler and keypoint mapping (issue 12)."""
