"""The labelled evaluation set of the open/click classifier and the command that scores it."""
