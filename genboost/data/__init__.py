"""The data layer: a dataset fetched and verified, checked and preprocessed, and read back as tensors."""
