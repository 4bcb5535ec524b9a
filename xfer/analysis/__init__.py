"""Analysis of a finished study: statistics, hypothesis tests, model probes, figures."""
