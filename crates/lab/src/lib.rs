//! bingfa-lab: the course's experiments and the side-by-side benchmarks of the models.
