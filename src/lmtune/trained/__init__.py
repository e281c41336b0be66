"""The trained-model folder (runs/<name>/model/): finding it, writing it, and loading it back for prediction,
evaluation, ONNX Runtime and generation. Everything that serves or reports on a trained model goes through here."""
