"""Reports rendered from a PackageVerdict: JSON (the contract), HTML, SARIF, JUnit."""
