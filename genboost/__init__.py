"""genboost: a reproducible study of generalization boosts (weight decay, SAM) on a small MLP."""
