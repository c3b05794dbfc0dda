"""Box head: features, predictor, loss and post-processing of the RoI classifier/regressor."""
