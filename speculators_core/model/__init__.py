"""The EAGLE-3 drafter: config (`DrafterConfig`), layers, the TTT forward (`Eagle3Drafter`), vocabulary mapping, verifier tensors."""
