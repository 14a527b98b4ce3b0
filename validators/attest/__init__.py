"""Verdicts with probative value: detached, signed attestations (in-toto Statement in a DSSE envelope).

``statement`` builds what is attested (the package and its files as subjects; the verdict's digest, ruleset,
engine and signature database as predicate), ``dsse`` signs and opens envelopes, ``keys`` holds the signers
(Ed25519 key files; a KMS/HSM signer plugs in by import path) and the keyring of trusted public keys,
``verify`` checks a verdict against its attestation offline, ``chain`` links the verdicts of a package.
Pure Python: no S3, no Prefect; the pipeline calls it when it stores a verdict.
"""
