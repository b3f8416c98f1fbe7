"""Pure torch.nn.Modules, one family per file. Models know nothing of recipes or data."""
