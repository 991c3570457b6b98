"""Pure data and ML logic (pandas, scikit-learn). Nothing here imports Dagster."""
