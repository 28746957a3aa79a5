"""The deployer: serves adapters over gRPC and rolls new ones out as mirrors or canaries."""
