"""juliafarm provision: the cloud side (Linode API v4, SSH, rsync); knows nothing of fractals."""
