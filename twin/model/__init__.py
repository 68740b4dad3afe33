"""The analytic model: alpha-beta costs of collectives on a two-tier fabric and one training
iteration with overlap, beside every measurement."""
