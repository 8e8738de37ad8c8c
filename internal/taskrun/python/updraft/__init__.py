"""What Updraft gives a `python` task's code.

    from updraft import Skip

    def load(rows, context):
        if not rows:
            raise Skip("nothing to load")   # the task ends skipped, like exit 99
"""


class Skip(Exception):
    """Raise it to end the task skipped (Airflow's AirflowSkipException)."""
