"""proofcheck's engine: pure Python checks of Ségur proof packages (never imports prefect or boto3)."""

__version__ = "0.2.0"
