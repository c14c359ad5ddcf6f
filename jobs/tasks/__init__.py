"""Task modules. Every module here is imported when the registry loads, so a
decorated function in a new file is a task with no other change."""
