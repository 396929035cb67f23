"""The workspace contract, identity linkage with Splink, and the feature pipeline."""
