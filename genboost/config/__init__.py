"""The config layer: the config file read and checked, the cell (the one list of settings), sweeps, the study."""
