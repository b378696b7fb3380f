int foo_answer(void);
