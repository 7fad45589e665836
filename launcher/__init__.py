"""juliafarm launcher: runs a scene on a rented Linode and always deletes it."""
