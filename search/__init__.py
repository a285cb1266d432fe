"""HOW the space is explored: Optuna study + Ray Tune scheduling, resume, and the CLI."""
