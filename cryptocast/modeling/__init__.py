"""Model training, export and TensorFlow-free inference."""
