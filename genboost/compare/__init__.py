"""The compare layer: the study beside a published table, the talk's conclusions per setup, the summary."""
