"""WHAT came out: trial tables, Pareto fronts, export, reports and plots."""
