"""The measures layer: what is measured on a trained model's weights (sharpness, Hessian, PAC-Bayes flatness)."""
