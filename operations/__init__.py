"""Commands an operator runs against a running stage: move the upload dead letters back
(``redrive``), rewrite album index keys after an upgrade (``reindex_albums``) and mint a
local-stage token (``mint_token``). Run through ``scripts/``."""
