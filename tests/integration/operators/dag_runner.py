"""Run worker DAGs with ``dag.test()`` in a fresh Airflow home (a subprocess of the tests).

Usage: ``python dag_runner.py SPEC_JSON``; SPEC is ``{"home", "dags_folder", "dag_file",
"runs": [{"dag_id", "conf"}]}``. Prints one line ``RESULT <json>``: per run, the run state, the
task states (mapped ones as ``task[i]``) and the rendered template fields Airflow stored.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.environ["AIRFLOW_HOME"] = spec["home"]
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = spec["dags_folder"]
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{spec['home']}/airflow.db"

    from airflow.utils import db

    db.initdb()
    module_spec = importlib.util.spec_from_file_location("worker_dags", spec["dag_file"])
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    from airflow.sdk import DAG

    dags = {value.dag_id: value for value in vars(module).values() if isinstance(value, DAG)}
    if any(run["dag_id"] not in dags for run in spec["runs"]):  # DAGs made in unnamed `with DAG(...)`
        from airflow.dag_processing.dagbag import DagBag

        dags.update(DagBag(dag_folder=spec["dag_file"]).dags)
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    results = []
    for run in spec["runs"]:
        dag = dags[run["dag_id"]]
        dag_run = dag.test(run_conf=run["conf"])
        with create_session() as session:
            rendered = session.scalars(
                select(RenderedTaskInstanceFields.rendered_fields).where(
                    RenderedTaskInstanceFields.dag_id == dag.dag_id,
                    RenderedTaskInstanceFields.run_id == dag_run.run_id,
                )
            ).all()
        results.append(
            {
                "run_id": dag_run.run_id,
                "state": str(dag_run.state),
                "tasks": {
                    (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state)
                    for ti in dag_run.get_task_instances()
                },
                "rendered": json.dumps(list(rendered), default=str),
            }
        )
    print("RESULT " + json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
