"""What a lecturer and a student see beyond the notebooks: slide metadata, the course map and
lesson plans, static slides and the course website."""
