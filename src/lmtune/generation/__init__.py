"""Text generation from causal LMs: batched answers for evaluation and `lmtune generate`, streaming for chat."""
