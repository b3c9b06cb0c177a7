"""The published site: gather what the stores hold, draw the charts, render the page, publish it all-or-nothing."""
