"""Apache Airflow provider for Alibaba Cloud Serverless Workflow (FnF) and Simple Message Queue (MNS)."""

__version__ = "0.1.0"
