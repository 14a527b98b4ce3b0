-- A second database for the verdict index (the first, "prefect", is Prefect's own).
CREATE DATABASE proofcheck OWNER proofcheck;
