"""scene2world: scene annotations to Cosmos-Transfer2.5 multiview driving videos."""

__version__ = "0.1.0"
