"""The project's own Paddle operators (C++), built at first use."""
