# meta: scalar_count=7 vector_count=5 matrix_count=2 setup_max_ops=7 predict_max_ops=6 learn_max_ops=12
# setup
s3 = -0.86354196
s2 = 0.0012579038
m0 = outer(v0, v3)
m1 = outer(v3, v4)
s6 = 0.038116142
s5 = s3 + s6
s3 = 0.32035846
# predict
s0 = dot(v2, v0)
s4 = 0.50815356
s0 = s4 + s0
s4 = s5 * s0
s6 = s4 * s4
s3 = s3 - s6
# learn
s0 = s1 - s6
s0 = s3 + s0
v1 = s0 * v0
s0 = s1 - s5
v1 = s2 * v1
v2 = v3 + v2
v3 = s2 * v2
s4 = 0.28469047
v3 = v1 + v3
s3 = s6 - s4
s3 = s0 * s3
v4 = s1 * v1
