"""Planning a run: the stage CLIs' flags (`flags`), the stages (`stages`), the script (`script`)
and `plan.plan_run`, which ties them together. Importing this package imports nothing heavy."""
