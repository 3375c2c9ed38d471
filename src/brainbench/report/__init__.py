"""Reports: terminal tables now; HTML and Markdown reports build on the same summaries."""
