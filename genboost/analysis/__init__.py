"""The analysis layer: tables, statistics, the granulated ranking of measures and figures of one experiment."""
