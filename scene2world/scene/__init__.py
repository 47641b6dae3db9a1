"""The scene model, the ClipGT and RDS-HQ loaders, interpolation, and a ClipGT writer."""
