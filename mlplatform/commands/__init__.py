"""What the `mlplatform` commands share, and the commands that are neither monitoring nor reports.

- table.py: the table `mlplatform COMMAND` dispatches on (name -> module, one-line help);
- instance_option.py: the `--dagster-home` option and opening the instance it names;
- dataset.py: `mlplatform dataset init|check`, drafting and checking a dataset folder.

cli.py imports only the table; a command module imports these, never cli.py.
"""
