"""The torch building blocks that features and training share: the small residual CNN, heads,
optimisers and schedules. Importing this package imports no torch; its modules do."""
